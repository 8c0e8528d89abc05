"""The derivation, one way: differential → trace form → gradient (simplified);
Jacobians, Hessians, the chain rule along a path, and dF of matrix-valued expressions."""
