"""The `tfgan` command line: thin shells over the library, one module per subcommand."""
