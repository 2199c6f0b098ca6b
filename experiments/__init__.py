"""The rooms: one package per seed system, installed as `celine.experiments.<room>`.

A room imports `celine.api`, Celine's shared substrates (`celine.llm`, ...) and
`celine.kernels`, never another room. Its `__init__` registers its task and methods with
strings only, so that `celine ls` stays light.
"""
