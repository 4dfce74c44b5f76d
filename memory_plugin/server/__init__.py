"""The memory server's parts: request signing (:mod:`.auth`), access keys (:mod:`memory_plugin.keys`, stored by
:mod:`memory_plugin.storage.sqlite.keys`; :mod:`.keys_cli`), authorisation rules (:mod:`.authorization`), abuse
limits (:mod:`.limits`) and the VikingDB search shape (:mod:`.vikingdb`).

Importing this package imports nothing else: the modules that need the ``server`` extra (FastAPI, uvicorn) import
it themselves, and the core (``memory_plugin``) never imports this package.
"""
