"""``imsg mcp``: iMessage as Model Context Protocol tools for desktop and coding agents.

A thin layer over the library, on the official MCP Python SDK over stdio:

- ``server``: the tools as the SDK declares them, threads, error mapping, the stdio run;
- ``reading``: find_chat, list_chats, get_unread, read_messages, get_context, search_messages;
- ``attachments``: get_attachment (images downscaled in a child process);
- ``waiting``: wait_for_message on the watcher's cursor;
- ``sending``: the send policy (--allow-send, --allow-to, --read-only), send_message, react,
  typing, mark_read;
- ``diagnose``: imsg doctor's checks and this server's own;
- ``finding``: chats and people from names, numbers, emails and group titles;
- ``formatting``: the compact one-line-per-message text a model reads;
- ``answers``: text + structured content, and imsg errors as MCP tool errors;
- ``when``: the times a model writes (ISO, dates, 2h/3d, today).
"""
