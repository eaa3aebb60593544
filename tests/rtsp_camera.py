"""A test RTSP camera: ``/usr/bin/python3 tests/rtsp_camera.py CLIP.mp4 PORT`` serves the H.264 MP4 at
rtsp://127.0.0.1:PORT/cam (the clip once per session) until killed: GStreamer's RTSP server through python3-gi
(setup.sh installs it). Run by tests/test_monitor_cameras.py with the system python, not the venv."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
clip, port = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( filesrc location={clip} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on port {port}")
print("ready", flush=True)
GLib.MainLoop().run()
