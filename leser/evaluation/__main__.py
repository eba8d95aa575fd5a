from leser.evaluation.cli import main

main()
