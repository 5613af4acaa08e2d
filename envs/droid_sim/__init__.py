"""DROID end to end in franky-sim (scripts/droid_sim_demo.sh): the two-target reaching task and its scripted
demonstrator (`task`), recordings in and out (`episodes`), and the success / safety / timing report (`report`)."""
