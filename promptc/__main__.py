from promptc.cli.app import main

main()
