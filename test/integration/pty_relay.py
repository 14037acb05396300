# Runs a command on a new pseudo-terminal as its controlling terminal (a session of its own,
# as a terminal emulator does) and relays: our stdin to the terminal, the terminal's output
# to our stdout with carriage returns removed. Ends when the terminal's last holder exits.
import os, pty, select, sys, termios

pid, master = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
stdin_open = True
while True:
    readable, _, _ = select.select([master] + ([0] if stdin_open else []), [], [])
    if 0 in readable:
        data = os.read(0, 4096)
        if data:
            os.write(master, data)
        else:
            stdin_open = False
    if master in readable:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        os.write(1, data.replace(b"\r", b""))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
