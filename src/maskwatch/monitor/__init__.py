"""Watching cameras: one isolated pipeline per camera (``camera.py``), tracks turned into person events
(``people.py``), kept in SQLite (``store.py``), run by the ``Monitor`` (``manager.py``); alert rules and their
webhook / MQTT delivery (``alerts.py``). Above ``detect``, below ``serve``; nothing of the training side."""
