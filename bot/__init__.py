"""policybot's application layer: settings, the command line, and (later) the Discord bot."""
