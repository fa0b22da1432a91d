from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp.forms import BaseForm


class LoginForm(BaseForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
