"""Everything of fmnist-edge that runs in a browser: `app` builds the offline web app from a release (the page in
`static/`, the runtimes' files from the npm packages web/package-lock.json pins), and `chromium` drives it in
headless Chromium to prove a release there (`verify --browser`, the CPU matrix's browser column, `bench --browser`).
"""
