"""Finding faces in photos, video and streams, and running the classifier on them (see pipeline.py).

Video, streams and webcams are read with PyAV (FFmpeg), whose own log lines stay off (PyAV's default): maskwatch
reports each failure in one line of its own."""
