from offhours.cli import main

raise SystemExit(main())
