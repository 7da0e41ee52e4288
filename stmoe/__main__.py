from stmoe.cli import main

raise SystemExit(main())
