from fixadapter.cli import main

raise SystemExit(main())
