"""Social insurance services at the edges: tables, operations, HTTP routes and the self-service page."""
