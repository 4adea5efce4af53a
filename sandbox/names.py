"""Word lists the generated records draw their Portuguese names and labels from."""

from __future__ import annotations

FIRST_NAMES = (
    "Ana Maria João Pedro Lucas Gabriel Juliana Fernanda Rafael Bruno Camila Larissa Mateus "
    "Beatriz Carlos Eduardo Patrícia Rodrigo Aline Thiago Letícia Felipe Vanessa Gustavo "
    "Mariana Diego Renata André Sabrina Vinícius Tatiane Leonardo Priscila Márcio Débora"
).split()
LAST_NAMES = (
    "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro "
    "Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias Nascimento "
    "Andrade Moreira Nunes Marques Machado Mendes Freitas Cardoso Ramos Gonçalves Araújo"
).split()
COMPANY_WORDS = (
    "Comercial Distribuidora Atacadão Indústria Transportes Papelaria Embalagens Tecidos "
    "Eletro Agro Metalúrgica Logística Serviços Importadora Gráfica Química Alimentos"
).split()
COMPANY_SUFFIXES = ("Ltda", "ME", "EIRELI", "S.A.", "Ltda - EPP")
PLACE_WORDS = (
    "Paulista Mineira Gaúcha Nordeste Central Horizonte Aurora Ipê Jatobá Atlântico "
    "Cerrado Pampa Serra Litoral Vale Sol Estrela Boa Vista"
).split()
CITIES = (
    ("São Paulo", "SP"),
    ("Campinas", "SP"),
    ("Rio de Janeiro", "RJ"),
    ("Belo Horizonte", "MG"),
    ("Curitiba", "PR"),
    ("Porto Alegre", "RS"),
    ("Florianópolis", "SC"),
    ("Salvador", "BA"),
    ("Recife", "PE"),
    ("Fortaleza", "CE"),
    ("Goiânia", "GO"),
    ("Manaus", "AM"),
)
PRODUCT_NOUNS = (
    "Camiseta Caneca Mochila Garrafa Caderno Fone Carregador Tênis Boné Jaqueta Luminária "
    "Toalha Panela Cafeteira Teclado Mouse Capinha Relógio Bolsa Óculos Almofada Vaso"
).split()
PRODUCT_ADJS = (
    "Básica Premium Slim Clássica Esportiva Térmica Compacta Infantil Pro Eco Deluxe Retrô"
).split()
PRODUCT_VARIANTS = (
    "Azul Preto Branco Verde Vermelho Cinza P M G GG 500ml 1L Bivolt 110V Kit"
).split()
SELLERS = ((0, ""), (501, "Carla Vendas"), (502, "Roberto Lima"), (503, "Loja Online"))
CATEGORIES_PAY = (
    "Fornecedores",
    "Aluguel",
    "Energia elétrica",
    "Internet",
    "Frete",
    "Impostos",
    "Salários",
    "Marketing",
)
CATEGORIES_REC = ("Vendas", "Vendas Marketplace", "Serviços", "Outras receitas")
PAYMENT_FORMS = ("boleto", "cartao_credito", "pix", "deposito", "dinheiro")
TAGS = ((1, "Urgente", "EF4444"), (2, "Marketplace", "3B82F6"), (3, "Presente", "10B981"))
