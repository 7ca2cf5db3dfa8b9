"""The training wing: the Trainer (trainer), its Keras callbacks (callbacks), the device strategy
(distribute) and each run's TensorBoard event files (tensorboard_logs).

Kept empty on purpose: importing this package imports no TensorFlow; import the module you need."""
