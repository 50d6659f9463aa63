"""The timed twin: mock workers timed by AIConfigurator's estimates for the GPUs they stand for."""
