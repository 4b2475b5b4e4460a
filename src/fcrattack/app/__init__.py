"""What the command line calls: attack a data set into an output folder (``attack_dataset``,
its ``batches`` and its ``output`` folder), write Grad-CAM maps (``cam_maps``) and the demo."""
