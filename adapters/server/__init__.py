"""The national-interface server: ASGI app, dispatch by ``infno``, handlers, its own tables and a client."""
