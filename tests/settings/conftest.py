"""The settings tests use the messages app: its own data directory and secret key."""

from tests.messages.conftest import message_client, mt

__all__ = ["message_client", "mt"]
