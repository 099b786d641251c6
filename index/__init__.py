"""policybot's index: articles -> sentence-aware chunks -> embeddings -> FAISS + SQLite on disk.

Nothing in this package imports discord; the bot and the CLI are thin layers over it.
"""
