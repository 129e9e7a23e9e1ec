"""The command-line tools that judge a deployment (bench now; profile,
monitor, top and sweep to come), each in a module of its own. They reach the
simulator only through infsim.runtime."""
