"""One verb module per `omzoo` subcommand: HELP, add_arguments and run; each imports the layers below, never
another verb (the table of verbs is cli.py's)."""
