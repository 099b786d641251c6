"""One cog per feature area: asking, reading the library, administration."""
