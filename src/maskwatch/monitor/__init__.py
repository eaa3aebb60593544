"""The camera monitor: cameras, tracked people as person events, their store, alerts and API."""
