"""The seeds' client APIs over memory_plugin: :mod:`memory_plugin.compat.tablestore` (``OTSClient``,
``AsyncOTSClient``). The core never imports this package."""
