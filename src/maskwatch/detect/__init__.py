"""Finding faces in photos, video and streams, and running the classifier on them (see pipeline.py)."""

import os as _os

# OpenCV and its FFmpeg print their own warnings and errors to stderr (a refused stream connection, a backend
# probe, "Camera index out of range"); maskwatch reports each failure in one line of its own.
# MASKWATCH_DEBUG=1 keeps their output.
if not _os.environ.get("MASKWATCH_DEBUG"):
    _os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    _os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
