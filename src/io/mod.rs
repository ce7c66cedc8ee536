//! AF_XDP and the BPF steering program: the only `unsafe` of the project.
