from imsg.entry import run

run()
