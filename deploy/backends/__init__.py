"""Robot backends: the arm (and its gripper) behind one small interface (`base.RobotBackend`)."""
