"""Helpers every layer may use (`bot`, `knowledge`, `adapters`): safe names for things users
name, and files written and locked safely. Nothing here knows about the app."""
