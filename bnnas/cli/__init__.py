"""The command-line layer: shared argument types and error handling, and one module per subcommand."""
