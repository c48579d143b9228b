"""Credentials to a Principal: passwords, sessions, PATs, install tokens, agent secrets."""
