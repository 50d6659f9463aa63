from dyncc.cli import main

main()
