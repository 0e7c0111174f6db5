"""The operator control channel of a running instance (issue 11): pause, resume, flatten, cancel-all.

``channel`` is the in-process API every transport calls (:class:`ControlChannel`);
``server`` is the local transport (a Unix socket in the instance's private
directory, line-delimited JSON); ``client`` and ``cli`` are the ``mmkit``
commands that talk to it; ``paths`` says where the socket lives; ``runtime``
wires all of it into a live run.
"""
