from framefarm.cli import main

main()
