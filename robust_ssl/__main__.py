from robust_ssl.cli import main

main()
