//! The local process runtime and OTP supervision trees (in progress).
