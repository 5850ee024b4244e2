"""The process runtime every layer uses: offline environment, thread and device choices, worker child processes."""
