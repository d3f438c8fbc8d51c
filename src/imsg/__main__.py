from imsg.cli import main

main()
