"""`specvoice bench`: specvoice's methods beside the tools people use instead, measured in one run on the
same clips, with the numbers that let a reader check a speed-up claim (WER, identical-output rate, passes).

manifest.py reads the clips, contestants.py and peers.py are what gets measured, runner.py measures them
(interleaved with `ar` so drift cancels), summary.py turns runs into metrics, report.py writes them out and
suite.py ties it together for the command line. process.py times whole commands instead (`--process`):
`specvoice transcribe`, and faster-whisper through faster_whisper_command.py, each started by launch.py;
stream.py and tts.py are the other tasks.
"""
