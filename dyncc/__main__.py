from dyncc.cli import main

main(prog_name="dyncc")
