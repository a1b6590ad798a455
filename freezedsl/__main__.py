from freezedsl.cli import main

main(prog_name="freezedsl")
