from pylive.cli import main

main()
