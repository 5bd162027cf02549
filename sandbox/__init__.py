"""The sandbox: fake ad platforms that speak each platform's real wire format, their server and the credentials
they accept. Product code: demo mode (``manage.py run_sandbox``, started by ``make run``), the test suite and the
benchmarks all use it, so a newcomer can connect every platform and watch a sync finish without a real account."""
