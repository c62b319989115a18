"""Suite-wide test settings: quiet TensorFlow, one thread per op unless a test says otherwise."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
