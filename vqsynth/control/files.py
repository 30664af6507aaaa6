"""Files a network client may have the server read (/vqsynth/tokens/wav), and how.

scsynth's rule (-P, a restricted path for file-reading commands, staged commands answering
/done later) is the model. A path is read only if it names a regular file inside the folder
`serve --files DIR` gives (none: file commands are off); its header (channels, rate, length,
size) is checked before anything is decoded; decoding, resampling and the encoder run on one
worker thread, never on the OSC receive thread, and the answer comes later. Every refusal of a
path gets the same words, so a client cannot tell a missing file from an unreadable or
forbidden one (it could map the file system that way)."""

from __future__ import annotations

import os
import queue
import stat
import threading
from pathlib import Path

REFUSED = "not a readable audio file in the server's files folder"
MAX_SECONDS = 120.0
MAX_CHANNELS = 8
MAX_BYTES = 64 << 20
RATES = (8000, 192000)
QUEUE = 4  # file jobs waiting; more are refused at once


class FileAccess:
    def __init__(self, folder=None):
        self.folder = Path(folder).resolve() if folder else None
        self.jobs: queue.Queue = queue.Queue(QUEUE)
        self.thread = None

    def check(self, path: str) -> Path:
        """The file `path` names, or ValueError: file commands off, or REFUSED whatever the reason."""
        import soundfile as sf

        if self.folder is None:
            raise ValueError("file commands are off: start the server with --files DIR to allow them")
        try:
            p = (self.folder / path).resolve(strict=True)
            st = os.stat(p)
            if not p.is_relative_to(self.folder) or not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                raise ValueError(path)
            info = sf.info(str(p))  # the header only: a regular file, so this cannot block
            if not (1 <= info.channels <= MAX_CHANNELS and RATES[0] <= info.samplerate <= RATES[1]
                    and 0 < info.frames <= MAX_SECONDS * info.samplerate):
                raise ValueError(path)
        except Exception:
            raise ValueError(REFUSED) from None
        return p

    def submit(self, work, fail):
        """Run work() on the worker (inline when none was started: offline harnesses); fail(why)
        when the queue is full or work raises."""
        def job():
            try:
                work()
            except ValueError as exc:
                fail(str(exc))
            except Exception as exc:  # decoding errors of a file whose header looked fine
                fail(f"{REFUSED} ({type(exc).__name__})")
        if self.thread is None:
            job()
            return
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            fail(f"{QUEUE} file commands are already waiting: try again later")

    def start(self):
        self.thread = threading.Thread(target=self._run, name="vqsynth-files", daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.jobs.put(None)
            self.thread.join(timeout=5.0)
            self.thread = None

    def _run(self):
        while (job := self.jobs.get()) is not None:
            job()
