"""The typed IR: immutable, interned nodes with symbolic shapes, and their normalising
builders."""
