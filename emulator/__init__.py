"""pocketcloud's cloud core: accounts, state, engines and use cases. No HTTP in here."""

__version__ = "0.1.0"
