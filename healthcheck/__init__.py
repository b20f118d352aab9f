"""healthcheck: keeps the WhatsApp sessions of a self-hosted gateway connected.

The command is healthcheck_sessions.py beside this folder (or the .pyz build);
the modules and the direction of their imports are drawn in docs/development.md.
"""
